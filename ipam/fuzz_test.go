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

// FuzzMemoryStore runs a differential script (see runStoreScript) from the
// fuzzer's bytes: the MemoryStore parses the keys it is given to route them
// to a pool's decoded region, and must answer exactly as a plain map does.
// A second part of the input is tried as a key of its own.
func FuzzMemoryStore(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "ipam/v1/owner/p/o")
	f.Add([]byte("commit get scan: every family of key and value"), "ipam/v1/page/p/0000000000000000/00000000000000000000000000000001")
	f.Add([]byte{0, 2, 20, 0, 1, 5, 6, 2, 3, 1, 1, 30, 2, 9}, "ipam/v1/page/p/000000000000000g/00000000000000000000000000000001")
	f.Add([]byte{2, 2, 2, 2, 1, 1, 1, 0, 0, 0, 7, 7, 7}, "ipam/v1/pool/a/b")
	f.Fuzz(func(t *testing.T, script []byte, key string) {
		runStoreScript(t, script)
		ms, ref := NewMemoryStore(), newRefStore()
		v := []byte(key)
		for _, s := range []Store{ms, ref} {
			if _, err := s.Commit(ctx, Txn{Conds: []Cond{{Key: key}}, Ops: []Op{{Key: key, Value: v}}}); err != nil {
				t.Fatal(err)
			}
		}
		g1, _ := ms.Get(ctx, key)
		g2, _ := ref.Get(ctx, key)
		requireSameKVs(t, g2, g1, "key %q", key)
		for _, p := range []string{"", key, key[:len(key)/2]} {
			c1, _ := collect(ctx, ms, p)
			c2, _ := collect(ctx, ref, p)
			requireSameKVs(t, c2, c1, "key %q scan %q", key, p)
		}
	})
}
