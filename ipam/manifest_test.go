package ipam

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ippoolYAML = `apiVersion: mcp.example.com/v1
kind: IPPool
metadata: {name: pool-us-west}
spec:
  subnet: "10.100.0.0/16"
  gateway: "10.100.0.1"
  reservedIPs: ["10.100.0.100-10.100.0.110"]
`

func TestParseManifestForms(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, specs []PoolSpec)
	}{
		{"IPPool YAML", ippoolYAML, func(t *testing.T, s []PoolSpec) {
			require.Len(t, s, 1)
			assert.Equal(t, "pool-us-west", s[0].Name)
			assert.Equal(t, prefix("10.100.0.0/16"), s[0].Subnet)
			assert.Equal(t, addr("10.100.0.1"), s[0].Gateway)
			assert.Equal(t, mustRange(t, "10.100.0.100-10.100.0.110"), s[0].Reserved[0])
		}},
		{"IPPool JSON with range and options", `{"apiVersion":"mcp.example.com/v1","kind":"IPPool","metadata":{"name":"p1","labels":{"cluster":"east"}},
			"spec":{"subnet":"2001:db8::/64","rangeStart":"2001:db8::10","rangeEnd":"2001:db8::ff","reservedIPs":["2001:db8::20/126","2001:db8::99"],
			"strategy":"fifo","cooldown":"30s","warnPercent":70,"criticalPercent":90}}`, func(t *testing.T, s []PoolSpec) {
			require.Len(t, s, 1)
			assert.Equal(t, "east", s[0].Cluster)
			assert.Equal(t, addr("2001:db8::10"), s[0].RangeStart)
			assert.Equal(t, FIFO, s[0].Strategy)
			assert.Equal(t, 30*time.Second, s[0].Cooldown)
			assert.InDelta(t, 0.7, s[0].Warn, 1e-9)
			assert.InDelta(t, 0.9, s[0].Critical, 1e-9)
			assert.Len(t, s[0].Reserved, 2)
		}},
		{"multi-document YAML", ippoolYAML + "---\n# second\n" + `apiVersion: mcp.example.com/v1
kind: IPPool
metadata:
  name: pool-b
  labels: {cluster: c2, tenant: t9}
spec:
  subnet: 10.101.0.0/24
  cluster: c1
  extraRanges:
  - {subnet: 10.102.0.0/24, gateway: 10.102.0.1}
---
`, func(t *testing.T, s []PoolSpec) {
			require.Len(t, s, 2)
			assert.Equal(t, "pool-b", s[1].Name)
			assert.Equal(t, "c1", s[1].Cluster, "spec wins over labels")
			assert.Equal(t, "t9", s[1].Tenant)
			require.Len(t, s[1].Extra, 1)
			assert.Equal(t, addr("10.102.0.1"), s[1].Extra[0].Gateway)
		}},
		{"List", `{"kind":"List","items":[{"kind":"IPPool","metadata":{"name":"a"},"spec":{"subnet":"10.0.0.0/24"}},{"kind":"IPPool","metadata":{"name":"b"},"spec":{"subnet":"10.0.1.0/24"}}]}`,
			func(t *testing.T, s []PoolSpec) { require.Len(t, s, 2); assert.Equal(t, "b", s[1].Name) }},
		{"CNI netconf single range", `{"cniVersion":"1.0.0","name":"mynet","type":"bridge","ipam":{"type":"host-local","subnet":"10.10.0.0/16","rangeStart":"10.10.1.20","rangeEnd":"10.10.3.50","gateway":"10.10.0.254"}}`,
			func(t *testing.T, s []PoolSpec) {
				require.Len(t, s, 1)
				assert.Equal(t, "mynet", s[0].Name)
				assert.Equal(t, addr("10.10.1.20"), s[0].RangeStart)
				assert.Equal(t, addr("10.10.3.50"), s[0].RangeEnd)
				assert.Equal(t, addr("10.10.0.254"), s[0].Gateway)
			}},
		{"CNI ranges: two range sets, one with two ranges", `{"cniVersion":"1.0.0","name":"dual","type":"bridge","ipam":{"type":"host-local","ranges":[
			[{"subnet":"10.1.2.0/24","rangeStart":"10.1.2.9","rangeEnd":"10.1.2.40"},{"subnet":"10.1.4.0/24"}],
			[{"subnet":"2001:db8:1::/64"}]]}}`, func(t *testing.T, s []PoolSpec) {
			require.Len(t, s, 2)
			assert.Equal(t, "dual-0", s[0].Name)
			assert.Equal(t, "dual-1", s[1].Name)
			require.Len(t, s[0].Extra, 1)
			assert.Equal(t, prefix("10.1.4.0/24"), s[0].Extra[0].Subnet)
			assert.Equal(t, prefix("2001:db8:1::/64"), s[1].Subnet)
		}},
		{"CNI conflist", `{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]]}},{"type":"portmap"}]}`,
			func(t *testing.T, s []PoolSpec) { require.Len(t, s, 1); assert.Equal(t, "k8s", s[0].Name) }},
		{"bare ipam with name", `{"name":"bare","type":"host-local","subnet":"192.0.2.0/24"}`,
			func(t *testing.T, s []PoolSpec) { require.Len(t, s, 1); assert.Equal(t, "bare", s[0].Name) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := ParseManifest([]byte(tt.in))
			require.NoError(t, err)
			tt.check(t, specs)
			// Round trip through MarshalManifest.
			b, err := MarshalManifest(specs...)
			require.NoError(t, err)
			back, err := ParseManifest(b)
			require.NoError(t, err)
			assert.Equal(t, specs, back)
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		doc   int
		line  int
		field string
		msg   string
		spec  bool // wraps a SpecError
	}{
		{"empty", "", 0, 0, "", "no pool definitions", false},
		{"yaml syntax", "kind: IPPool\nspec: [\n", 1, 2, "", "", false},
		{"yaml syntax in second document", ippoolYAML + "---\nkind: IPPool\nmetadata: {name: x\n", 2, 10, "", "", false},
		{"unknown kind", "kind: Pod\n", 1, 0, "kind", `unsupported kind "Pod"`, false},
		{"missing spec", "kind: IPPool\nmetadata: {name: a}\n", 1, 0, "spec", "missing", false},
		{"unknown spec field", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, reserved: [10.0.0.5]}\n", 1, 0, "spec", "unknown field \"reserved\"", false},
		{"non-canonical subnet", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.1/24}\n", 1, 0, "spec.subnet", "the subnet is 10.0.0.0/24", true},
		{"gateway outside", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, gateway: 10.0.1.1}\n", 1, 0, "spec.gateway", `"10.0.1.1": outside the subnet`, true},
		{"malformed reserved", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, reservedIPs: [10.0.0.1, 10.0.0.9-10.0.0.2]}\n", 1, 0, "spec.reservedIPs[1]", "reversed", true},
		{"reserved outside", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, reservedIPs: [10.9.0.0/28]}\n", 1, 0, "spec.reservedIPs[0]", "outside", true},
		{"range reversed", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, rangeStart: 10.0.0.9, rangeEnd: 10.0.0.2}\n", 1, 0, "spec.rangeStart", "after rangeEnd", true},
		{"mixed family", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, gateway: '2001:db8::1'}\n", 1, 0, "spec.gateway", "mixed address families", true},
		{"bad name", "kind: IPPool\nmetadata: {name: A_}\nspec: {subnet: 10.0.0.0/24}\n", 1, 0, "metadata.name", "not allowed", true},
		{"bad cooldown", "kind: IPPool\nmetadata: {name: a}\nspec: {subnet: 10.0.0.0/24, cooldown: soon}\n", 1, 0, "spec.cooldown", "not a duration", true},
		{"CNI other ipam type", `{"name":"n","ipam":{"type":"dhcp"}}`, 1, 0, "ipam.type", "only host-local", false},
		{"CNI no name", `{"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, 1, 0, "name", "missing network name", false},
		{"CNI subnet and ranges", `{"name":"n","ipam":{"subnet":"10.0.0.0/24","ranges":[[{"subnet":"10.0.1.0/24"}]]}}`, 1, 0, "ipam.subnet", "both", false},
		{"CNI bad range in set", `{"name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.1.0/24","gateway":"10.0.2.1"}]]}}`, 1, 0, "ipam.ranges[1][0].gateway", "outside", true},
		{"CNI bad extra range", `{"name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"10.0.1.0/24","rangeEnd":"10.0.3.1"}]]}}`, 1, 0, "ipam.ranges[0][1].rangeEnd", "outside", true},
		{"CNI empty set", `{"name":"n","ipam":{"ranges":[[]]}}`, 1, 0, "ipam.ranges[0]", "empty range set", false},
		{"neither", `{"foo": 1}`, 1, 0, "", "not an IPPool manifest", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.in))
			require.Error(t, err)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "%T %v", err, err)
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Equal(t, tt.doc, pe.Doc, err.Error())
			if tt.line > 0 {
				assert.Equal(t, tt.line, pe.Line, err.Error())
			}
			assert.Equal(t, tt.field, pe.Field, err.Error())
			assert.Contains(t, err.Error(), tt.msg)
			assert.Equal(t, tt.spec, errors.Is(err, ErrInvalidSpec), err.Error())
		})
	}
}

func TestParseCNIName(t *testing.T) {
	specs, err := ParseCNI([]byte(`{"type":"host-local","subnet":"192.0.2.0/24"}`), "given")
	require.NoError(t, err)
	assert.Equal(t, "given", specs[0].Name)
	_, err = ParseCNI([]byte(`{"kind":"IPPool"}`), "x")
	assert.ErrorIs(t, err, ErrSyntax)
	_, err = ParseCNI([]byte(`not json`), "x")
	assert.ErrorIs(t, err, ErrSyntax)
}
