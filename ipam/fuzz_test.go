package ipam

import (
	"errors"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(ippoolYAML))
	f.Add([]byte(ippoolYAML + "---\n" + ippoolYAML))
	f.Add([]byte(`{"kind":"List","items":[{"kind":"IPPool","metadata":{"name":"a"},"spec":{"subnet":"2001:db8::/64","reservedIPs":["2001:db8::5-2001:db8::9"]}}]}`))
	f.Add([]byte("kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.1/24}\n"))
	f.Add([]byte("kind: IPPool\nspec: [\n"))
	f.Add([]byte(`{"name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		for _, s := range specs {
			if _, err := Compile(s); err != nil {
				t.Fatalf("parsed spec does not compile: %v", err)
			}
		}
		b, err := MarshalManifest(specs...)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseManifest(b)
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, b)
		}
		if len(back) != len(specs) {
			t.Fatalf("round trip: %d specs, want %d", len(back), len(specs))
		}
	})
}

func FuzzParseCNI(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"mynet","ipam":{"type":"host-local","subnet":"10.10.0.0/16","rangeStart":"10.10.1.20","rangeEnd":"10.10.3.50","gateway":"10.10.0.254"}}`))
	f.Add([]byte(`{"name":"dual","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"},{"subnet":"10.1.4.0/24"}],[{"subnet":"2001:db8:1::/64"}]]}}`))
	f.Add([]byte(`{"name":"k8s","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]]}}]}`))
	f.Add([]byte(`{"type":"host-local","subnet":"192.0.2.0/24"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseCNI(data, "")
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		for _, s := range specs {
			p, err := Compile(s)
			if err != nil {
				t.Fatalf("parsed spec does not compile: %v", err)
			}
			if p.Size().Cmp(p.Total()) > 0 {
				t.Fatalf("allocatable %s > total %s", p.Size(), p.Total())
			}
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.0.0.5", "10.100.0.100-10.100.0.110", "10.0.0.0/28", "2001:db8::/126", "::ffff:10.0.0.1-10.0.0.3", "10.0.0.9-10.0.0.1", "1-2", "/", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		if !r.IsValid() || r.From().Is4In6() || r.To().Is4In6() || r.From().Zone() != "" {
			t.Fatalf("%q parsed to invalid or unnormalized range %v", s, r)
		}
		back, err := ParseRange(formatRange(r))
		if err != nil || back != r {
			t.Fatalf("%q: round trip %q gives %v, %v", s, formatRange(r), back, err)
		}
	})
}
