package ipam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// MaxManifestSize bounds the input ParseManifest accepts (16 MiB).
const MaxManifestSize = 16 << 20

// ParseManifest decodes the pool definitions users already have, in YAML or
// JSON:
//
//   - IPPool manifests (kind: IPPool; several documents separated by "---",
//     or kind: List / IPPoolList with items). metadata.name names the pool;
//     spec holds subnet, gateway, rangeStart, rangeEnd, reservedIPs
//     (addresses, a-b ranges, CIDRs) and optionally cluster, tenant,
//     strategy, cooldown ("30s"), warnPercent, criticalPercent and
//     extraRanges (a list of {subnet, gateway, rangeStart, rangeEnd}).
//     metadata.labels "cluster" and "tenant" are used when spec lacks them.
//   - CNI configurations using host-local IPAM: a network configuration
//     ({"name", "ipam": {...}}), a configuration list ({"name", "plugins":
//     [...]}) or a bare ipam object with a "name". The single-range form
//     (subnet, rangeStart, rangeEnd, gateway) gives one pool named after the
//     network; the "ranges" form gives one pool per range set, named NAME
//     when there is one set and NAME-0, NAME-1, … otherwise, each range set's
//     further ranges becoming the pool's Extra ranges.
//
// The specs are validated as Compile does. Errors are *ParseError (with the
// document and line) wrapping *SpecError where a value is bad.
func ParseManifest(data []byte) ([]PoolSpec, error) {
	if len(data) > MaxManifestSize {
		return nil, &ParseError{Msg: fmt.Sprintf("input of %d bytes exceeds %d", len(data), MaxManifestSize)}
	}
	var out []PoolSpec
	for i, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(stripComments(doc.text))) == 0 {
			continue
		}
		specs, err := parseDocument(doc.text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				pe = &ParseError{Msg: err.Error(), Err: err}
			}
			pe.Doc = i + 1
			if pe.Line > 0 {
				pe.Line += doc.line - 1
			}
			return nil, pe
		}
		out = append(out, specs...)
	}
	if len(out) == 0 {
		return nil, &ParseError{Msg: "no pool definitions found"}
	}
	return out, nil
}

type document struct {
	text []byte
	line int // 1-based line of the document's first line
}

// splitDocuments splits YAML at "---" separator lines.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for pos := 0; pos <= len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		l := bytes.TrimRight(data[pos:end], " \t\r")
		if bytes.Equal(l, []byte("---")) || bytes.HasPrefix(l, []byte("--- ")) {
			docs = append(docs, document{text: data[start:pos], line: startLine})
			start, startLine = end+1, line+1
			if start > len(data) {
				start = len(data)
			}
		}
		pos = end + 1
		line++
	}
	docs = append(docs, document{text: data[start:], line: startLine})
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// parseDocument decodes one YAML or JSON document.
func parseDocument(doc []byte) ([]PoolSpec, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		pe := &ParseError{Msg: strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "), Err: err}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			pe.Line, _ = strconv.Atoi(m[1])
		}
		return nil, pe
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, &ParseError{Msg: "document is not a mapping", Err: err}
	}
	kind := jsonString(top["kind"])
	switch {
	case kind == "IPPool":
		s, err := parseIPPool(js)
		if err != nil {
			return nil, err
		}
		return []PoolSpec{s}, nil
	case kind == "List" || kind == "IPPoolList":
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &list); err != nil {
			return nil, &ParseError{Field: "items", Msg: err.Error(), Err: err}
		}
		var out []PoolSpec
		for i, it := range list.Items {
			s, err := parseIPPool(it)
			if err != nil {
				var pe *ParseError
				if errors.As(err, &pe) {
					pe.Field = fmt.Sprintf("items[%d].%s", i, pe.Field)
				}
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case kind != "":
		return nil, &ParseError{Field: "kind", Msg: fmt.Sprintf("unsupported kind %q (want IPPool, IPPoolList or List)", kind)}
	case top["plugins"] != nil:
		var conf struct {
			Name    string            `json:"name"`
			Plugins []json.RawMessage `json:"plugins"`
		}
		if err := json.Unmarshal(js, &conf); err != nil {
			return nil, &ParseError{Field: "plugins", Msg: err.Error(), Err: err}
		}
		var out []PoolSpec
		for i, p := range conf.Plugins {
			var pl struct {
				IPAM json.RawMessage `json:"ipam"`
			}
			if err := json.Unmarshal(p, &pl); err != nil {
				return nil, &ParseError{Field: fmt.Sprintf("plugins[%d]", i), Msg: err.Error(), Err: err}
			}
			if len(pl.IPAM) == 0 || string(pl.IPAM) == "null" {
				continue
			}
			specs, err := parseCNIIPAM(conf.Name, pl.IPAM, fmt.Sprintf("plugins[%d].ipam", i))
			if err != nil {
				return nil, err
			}
			out = append(out, specs...)
		}
		if len(out) == 0 {
			return nil, &ParseError{Field: "plugins", Msg: "no plugin has an ipam section"}
		}
		return out, nil
	case top["ipam"] != nil:
		return parseCNIIPAM(jsonString(top["name"]), top["ipam"], "ipam")
	case top["ranges"] != nil || top["subnet"] != nil:
		return parseCNIIPAM(jsonString(top["name"]), js, "")
	}
	return nil, &ParseError{Msg: "not an IPPool manifest nor a CNI configuration (no kind, ipam, plugins, ranges or subnet)"}
}

func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// specJSON is the IPPool spec as written in manifests, and (versioned) the
// stored form of a pool's spec.
type specJSON struct {
	Subnet          string      `json:"subnet"`
	Gateway         string      `json:"gateway,omitempty"`
	RangeStart      string      `json:"rangeStart,omitempty"`
	RangeEnd        string      `json:"rangeEnd,omitempty"`
	ReservedIPs     []string    `json:"reservedIPs,omitempty"`
	ExtraRanges     []rangeJSON `json:"extraRanges,omitempty"`
	Cluster         string      `json:"cluster,omitempty"`
	Tenant          string      `json:"tenant,omitempty"`
	Strategy        string      `json:"strategy,omitempty"`
	Cooldown        string      `json:"cooldown,omitempty"`
	WarnPercent     float64     `json:"warnPercent,omitempty"`
	CriticalPercent float64     `json:"criticalPercent,omitempty"`
}

type rangeJSON struct {
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway,omitempty"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
}

func parseIPPool(js []byte) (PoolSpec, error) {
	var m struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(js, &m); err != nil {
		return PoolSpec{}, &ParseError{Msg: err.Error(), Err: err}
	}
	if len(m.Spec) == 0 || string(m.Spec) == "null" {
		return PoolSpec{}, &ParseError{Field: "spec", Msg: "missing"}
	}
	dec := json.NewDecoder(bytes.NewReader(m.Spec))
	dec.DisallowUnknownFields()
	var sj specJSON
	if err := dec.Decode(&sj); err != nil {
		return PoolSpec{}, &ParseError{Field: "spec", Msg: err.Error(), Err: err}
	}
	if sj.Cluster == "" {
		sj.Cluster = m.Metadata.Labels["cluster"]
	}
	if sj.Tenant == "" {
		sj.Tenant = m.Metadata.Labels["tenant"]
	}
	s, err := specFromJSON(m.Metadata.Name, &sj)
	if err != nil {
		return PoolSpec{}, wrapSpecErr(err, "spec.")
	}
	return s, nil
}

// wrapSpecErr turns a *SpecError into a *ParseError naming the field path.
func wrapSpecErr(err error, prefix string) error {
	var se *SpecError
	if errors.As(err, &se) {
		f := se.Field
		if f == "name" {
			f = "metadata.name"
		} else {
			f = prefix + f
		}
		return &ParseError{Field: f, Msg: err.Error(), Err: err}
	}
	return err
}

// specFromJSON converts and validates a manifest spec.
func specFromJSON(name string, sj *specJSON) (PoolSpec, error) {
	s := PoolSpec{Name: name, Cluster: sj.Cluster, Tenant: sj.Tenant, Strategy: Strategy(sj.Strategy)}
	bad := func(field, value, msg string) error {
		return &SpecError{Pool: name, Field: field, Value: value, Msg: msg}
	}
	var err error
	if sj.Subnet == "" {
		return s, bad("subnet", "", "missing")
	}
	if s.Subnet, err = netip.ParsePrefix(strings.TrimSpace(sj.Subnet)); err != nil {
		return s, bad("subnet", sj.Subnet, "not a CIDR")
	}
	for _, f := range []struct {
		field, in string
		out       *netip.Addr
	}{{"gateway", sj.Gateway, &s.Gateway}, {"rangeStart", sj.RangeStart, &s.RangeStart}, {"rangeEnd", sj.RangeEnd, &s.RangeEnd}} {
		if f.in == "" {
			continue
		}
		if *f.out, err = netip.ParseAddr(strings.TrimSpace(f.in)); err != nil {
			return s, bad(f.field, f.in, "not an IP address")
		}
	}
	for i, r := range sj.ExtraRanges {
		rg, err := rangeFromJSON(name, fmt.Sprintf("extraRanges[%d].", i), r)
		if err != nil {
			return s, err
		}
		s.Extra = append(s.Extra, rg)
	}
	for i, r := range sj.ReservedIPs {
		rr, err := ParseRange(r)
		if err != nil {
			var pe *ParseError
			msg := err.Error()
			if errors.As(err, &pe) {
				msg = pe.Msg
			}
			return s, bad(fmt.Sprintf("reservedIPs[%d]", i), r, msg)
		}
		s.Reserved = append(s.Reserved, rr)
	}
	if sj.Cooldown != "" {
		if s.Cooldown, err = time.ParseDuration(sj.Cooldown); err != nil {
			return s, bad("cooldown", sj.Cooldown, "not a duration such as 30s or 5m")
		}
	}
	s.Warn, s.Critical = sj.WarnPercent/100, sj.CriticalPercent/100
	p, err := Compile(s)
	if err != nil {
		var se *SpecError
		if errors.As(err, &se) {
			se.Field = manifestField(se.Field)
		}
		return s, err
	}
	return p.Spec(), nil
}

// manifestField maps Compile's field names to the manifest's.
func manifestField(f string) string {
	switch {
	case strings.HasPrefix(f, "reserved["):
		return "reservedIPs" + strings.TrimPrefix(f, "reserved")
	case strings.HasPrefix(f, "extra["):
		return "extraRanges" + strings.TrimPrefix(f, "extra")
	case f == "warn":
		return "warnPercent"
	case f == "critical":
		return "criticalPercent"
	}
	return f
}

func rangeFromJSON(pool, prefix string, r rangeJSON) (Range, error) {
	var rg Range
	var err error
	if r.Subnet == "" {
		return rg, &SpecError{Pool: pool, Field: prefix + "subnet", Msg: "missing"}
	}
	if rg.Subnet, err = netip.ParsePrefix(strings.TrimSpace(r.Subnet)); err != nil {
		return rg, &SpecError{Pool: pool, Field: prefix + "subnet", Value: r.Subnet, Msg: "not a CIDR"}
	}
	for _, f := range []struct {
		field, in string
		out       *netip.Addr
	}{{"gateway", r.Gateway, &rg.Gateway}, {"rangeStart", r.RangeStart, &rg.RangeStart}, {"rangeEnd", r.RangeEnd, &rg.RangeEnd}} {
		if f.in == "" {
			continue
		}
		if *f.out, err = netip.ParseAddr(strings.TrimSpace(f.in)); err != nil {
			return rg, &SpecError{Pool: pool, Field: prefix + f.field, Value: f.in, Msg: "not an IP address"}
		}
	}
	return rg, nil
}

// specToJSON renders a spec in manifest form.
func specToJSON(s *PoolSpec) specJSON {
	str := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	sj := specJSON{
		Subnet: s.Subnet.String(), Gateway: str(s.Gateway), RangeStart: str(s.RangeStart), RangeEnd: str(s.RangeEnd),
		Cluster: s.Cluster, Tenant: s.Tenant, Strategy: string(s.Strategy),
		WarnPercent: s.Warn * 100, CriticalPercent: s.Critical * 100,
	}
	if s.Cooldown != 0 {
		sj.Cooldown = s.Cooldown.String()
	}
	for _, r := range s.Reserved {
		sj.ReservedIPs = append(sj.ReservedIPs, formatRange(r))
	}
	for _, r := range s.Extra {
		sj.ExtraRanges = append(sj.ExtraRanges, rangeJSON{Subnet: r.Subnet.String(), Gateway: str(r.Gateway), RangeStart: str(r.RangeStart), RangeEnd: str(r.RangeEnd)})
	}
	return sj
}

// MarshalManifest renders specs as IPPool manifests (JSON, one List), the
// inverse of ParseManifest.
func MarshalManifest(specs ...PoolSpec) ([]byte, error) {
	type meta struct {
		Name string `json:"name"`
	}
	type item struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Metadata   meta     `json:"metadata"`
		Spec       specJSON `json:"spec"`
	}
	list := struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Items      []item `json:"items"`
	}{APIVersion: "v1", Kind: "List", Items: []item{}}
	for i := range specs {
		list.Items = append(list.Items, item{APIVersion: "mcp.example.com/v1", Kind: "IPPool", Metadata: meta{Name: specs[i].Name}, Spec: specToJSON(&specs[i])})
	}
	return json.MarshalIndent(list, "", "  ")
}

// cniIPAM is the host-local ipam section.
type cniIPAM struct {
	Type       string        `json:"type"`
	Subnet     string        `json:"subnet"`
	RangeStart string        `json:"rangeStart"`
	RangeEnd   string        `json:"rangeEnd"`
	Gateway    string        `json:"gateway"`
	Ranges     [][]rangeJSON `json:"ranges"`
	Name       string        `json:"name"`
}

// ParseCNI decodes a CNI host-local ipam configuration (a network
// configuration, a configuration list or a bare ipam object) into pool specs
// named after name, or after the configuration's own "name" when name is "".
// See ParseManifest for the naming of range sets.
func ParseCNI(data []byte, name string) ([]PoolSpec, error) {
	if len(data) > MaxManifestSize {
		return nil, &ParseError{Msg: fmt.Sprintf("input of %d bytes exceeds %d", len(data), MaxManifestSize)}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, &ParseError{Msg: "not a JSON object: " + err.Error(), Err: err}
	}
	if name != "" {
		top["name"], _ = json.Marshal(name)
		data, _ = json.Marshal(top)
	}
	if top["ipam"] == nil && top["plugins"] == nil && top["ranges"] == nil && top["subnet"] == nil {
		return nil, &ParseError{Msg: "no ipam section, plugins, ranges or subnet"}
	}
	delete(top, "kind")
	return parseDocument(data)
}

func parseCNIIPAM(name string, raw json.RawMessage, path string) ([]PoolSpec, error) {
	field := func(f string) string {
		if path == "" {
			return f
		}
		return path + "." + f
	}
	var c cniIPAM
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, &ParseError{Field: path, Msg: err.Error(), Err: err}
	}
	if c.Type != "" && c.Type != "host-local" {
		return nil, &ParseError{Field: field("type"), Msg: fmt.Sprintf("ipam type %q: only host-local is understood", c.Type)}
	}
	if name == "" {
		name = c.Name
	}
	if name == "" {
		return nil, &ParseError{Field: "name", Msg: "missing network name (the pool is named after it)"}
	}
	sets := c.Ranges
	prefix := func(i, j int) string { return field(fmt.Sprintf("ranges[%d][%d].", i, j)) }
	if c.Subnet != "" {
		if len(sets) > 0 {
			return nil, &ParseError{Field: field("subnet"), Msg: "both subnet and ranges given"}
		}
		sets = [][]rangeJSON{{{Subnet: c.Subnet, RangeStart: c.RangeStart, RangeEnd: c.RangeEnd, Gateway: c.Gateway}}}
		prefix = func(int, int) string { return field("") }
	}
	if len(sets) == 0 {
		return nil, &ParseError{Field: field("ranges"), Msg: "no ranges"}
	}
	var out []PoolSpec
	for i, set := range sets {
		if len(set) == 0 {
			return nil, &ParseError{Field: field(fmt.Sprintf("ranges[%d]", i)), Msg: "empty range set"}
		}
		s := PoolSpec{Name: name}
		if len(sets) > 1 {
			s.Name = fmt.Sprintf("%s-%d", name, i)
		}
		for j, r := range set {
			rg, err := rangeFromJSON(s.Name, prefix(i, j), r)
			if err != nil {
				return nil, wrapSpecErr(err, "")
			}
			if j == 0 {
				s.Subnet, s.Gateway, s.RangeStart, s.RangeEnd = rg.Subnet, rg.Gateway, rg.RangeStart, rg.RangeEnd
			} else {
				s.Extra = append(s.Extra, rg)
			}
		}
		p, err := Compile(s)
		if err != nil {
			var se *SpecError
			if errors.As(err, &se) && se.Field != "name" {
				se.Field = cniField(se.Field, prefix, i)
			}
			return nil, wrapSpecErr(err, "")
		}
		out = append(out, p.Spec())
	}
	return out, nil
}

// cniField maps Compile's field names (extra[k].f) to the CNI form.
func cniField(f string, prefix func(i, j int) string, set int) string {
	if strings.HasPrefix(f, "extra[") {
		var k int
		var rest string
		if n, _ := fmt.Sscanf(f, "extra[%d].%s", &k, &rest); n == 2 {
			return prefix(set, k+1) + rest
		}
	}
	return prefix(set, 0) + f
}
