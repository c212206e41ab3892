package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/packetmortem/packetmortem/stages/verdict"
	"github.com/packetmortem/packetmortem/stages/verdict/prose"
)

const schemaURL = "https://github.com/packetmortem/packetmortem/report/schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		t.Fatalf("schema.json does not compile: %v", err)
	}
	return s
}

func validate(s *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// TestSchemaValidatesRecorded: every recorded report, and what WriteJSON writes from it,
// is valid against report/schema.json.
func TestSchemaValidatesRecorded(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	for _, name := range goldens(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "testdata", "reports", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(s, raw); err != nil {
				t.Errorf("recorded %s.json: %v", name, err)
			}
			var buf bytes.Buffer
			if err := readRecorded(t, name).WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			if err := validate(s, buf.Bytes()); err != nil {
				t.Errorf("WriteJSON of %s: %v", name, err)
			}
		})
	}
}

// TestSchemaRejects: the schema is strict enough to catch a broken report.
func TestSchemaRejects(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "reports", "input_drop_rule_v4.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(s, raw); err != nil {
		t.Fatalf("the unmutated report is invalid: %v", err)
	}
	mutations := map[string]func(m map[string]any){
		"outcome exploded":         func(m map[string]any) { obj(m, "verdict")["outcome"] = "exploded" },
		"no verdict.summary":       func(m map[string]any) { delete(obj(m, "verdict"), "summary") },
		"empty verdict.summary":    func(m map[string]any) { obj(m, "verdict")["summary"] = "" },
		"unknown stage":            func(m map[string]any) { obj(m, "verdict")["stage"] = "kitchen" },
		"reason a number":          func(m map[string]any) { obj(m, "verdict")["reason"] = 7 },
		"dropped without a reason": func(m map[string]any) { obj(m, "verdict")["reason"] = nil },
		"delivered with a reason":  func(m map[string]any) { obj(m, "verdict")["outcome"] = "delivered" },
		"no verdict":               func(m map[string]any) { delete(m, "verdict") },
		"an unknown field":         func(m map[string]any) { m["extra"] = true },
		"a misspelt field":         func(m map[string]any) { v := obj(m, "verdict"); v["sumary"] = v["summary"] },
		"schema version 1":         func(m map[string]any) { m["schema_version"] = 1 },
		"schema version 3":         func(m map[string]any) { m["schema_version"] = 3 },
		"port out of range":        func(m map[string]any) { obj(m, "flow")["port"] = 70000 },
		"address not an address":   func(m map[string]any) { obj(m, "flow")["addr"] = "example.com" },
		"proto sctp":               func(m map[string]any) { obj(m, "flow")["proto"] = "sctp" },
		"map status bad":           func(m map[string]any) { first(obj(m, "verdict"), "map")["status"] = "fine" },
		"empty map":                func(m map[string]any) { obj(m, "verdict")["map"] = []any{} },
		"packet going sideways": func(m map[string]any) {
			first(obj(obj(m, "stages"), "arrival"), "packets")["direction"] = "sideways"
		},
		"packet time not a time": func(m map[string]any) {
			first(obj(obj(m, "stages"), "arrival"), "packets")["time"] = "yesterday"
		},
		"drop without stack": func(m map[string]any) {
			delete(first(obj(obj(m, "stages"), "kernel_drop"), "drops"), "stack")
		},
		"a published port not a mapping": func(m map[string]any) {
			first(obj(obj(m, "stages"), "kernel_drop"), "drops")["published"] = []any{"80/tcp"}
		},
		"trace verdict maybe": func(m map[string]any) {
			first(obj(obj(m, "stages"), "firewall"), "traces")["verdict"] = "maybe"
		},
		"negative count":   func(m map[string]any) { obj(obj(m, "stages"), "kernel_drop")["seen"] = -1 },
		"no kernel_drop":   func(m map[string]any) { delete(obj(m, "stages"), "kernel_drop") },
		"stopped by magic": func(m map[string]any) { obj(m, "run")["stopped_by"] = "magic" },
	}
	rejects(t, s, raw, mutations)
	// Published ports pass as netns.Owners.Published writes them.
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	first(obj(obj(m, "stages"), "kernel_drop"), "drops")["published"] = []any{"8080->80/tcp", "127.0.0.1:9090->80/udp", "[::1]:8081->80/tcp"}
	data, _ := json.Marshal(m)
	if err := validate(s, data); err != nil {
		t.Errorf("the schema rejects published ports as `docker ps` writes them: %v", err)
	}

	// The journey, on a report that has one.
	raw, err = os.ReadFile(filepath.Join("..", "testdata", "reports", "dnat_to_container_v4.json"))
	if err != nil {
		t.Fatal(err)
	}
	hop := func(m map[string]any) map[string]any { return first(obj(m, "verdict"), "journey") }
	rejects(t, s, raw, map[string]func(m map[string]any){
		"an empty journey":        func(m map[string]any) { obj(m, "verdict")["journey"] = []any{} },
		"a hop without its netns": func(m map[string]any) { delete(hop(m), "netns") },
		"a hop without stages":    func(m map[string]any) { delete(hop(m), "stages") },
		"a hop stage unknown":     func(m map[string]any) { hop(m)["stages"].([]any)[0].(map[string]any)["stage"] = "kitchen" },
		"a translation MASQ":      func(m map[string]any) { obj(hop(m), "translation")["kind"] = "MASQ" },
		"a translation to a host": func(m map[string]any) { obj(hop(m), "translation")["to"] = "example.com:80" },
		"a hop that died maybe":   func(m map[string]any) { hop(m)["died"] = "maybe" },
	})
}

// rejects checks that the schema rejects report raw after each of the mutations.
func rejects(t *testing.T, s *jsonschema.Schema, raw []byte, mutations map[string]func(m map[string]any)) {
	t.Helper()
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			mutate(m)
			data, _ := json.Marshal(m)
			if err := validate(s, data); err == nil {
				t.Errorf("the schema accepts a report with %s", name)
			}
		})
	}
}

// TestSchemaKeepsVerdict: schema version 2 added the journey and kept every name of the
// verdict of version 1, required where it was required, so that scripts written for 1
// still read a report of 2.
func TestSchemaKeepsVerdict(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(Schema(), &doc); err != nil {
		t.Fatal(err)
	}
	v := obj(obj(doc, "$defs"), "verdict")
	props := obj(v, "properties")
	for _, name := range []string{"outcome", "stage", "reason", "function", "location", "summary", "explanation", "fix",
		"rule", "drops", "netfilter", "elsewhere", "map", "fates", "notes"} {
		if _, ok := props[name]; !ok {
			t.Errorf("verdict.%s of schema version 1 is gone", name)
		}
	}
	var required []string
	for _, r := range v["required"].([]any) {
		required = append(required, r.(string))
	}
	if want := []string{"outcome", "stage", "reason", "summary", "drops", "map"}; !slices.Equal(required, want) {
		t.Errorf("the verdict requires %q, version 1 required %q", required, want)
	}
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func first(m map[string]any, key string) map[string]any { return m[key].([]any)[0].(map[string]any) }

// TestSchemaCoversModel: every JSON name of the Go model is in the schema, at the same
// place, and the schema has no name the model does not write. A field added to the model
// without the schema fails here, even before a recorded report holds it.
func TestSchemaCoversModel(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(Schema(), &doc); err != nil {
		t.Fatal(err)
	}
	if v := obj(obj(doc, "properties"), "schema_version")["const"]; v != float64(SchemaVersion) {
		t.Errorf("schema.json has schema_version %v, the code %d", v, SchemaVersion)
	}
	defs := obj(doc, "$defs")
	var problems []string
	var walk func(path string, typ reflect.Type, s map[string]any)
	// A type that holds itself (a firewall's traces elsewhere) is walked once.
	walked := map[reflect.Type]bool{}
	walk = func(path string, typ reflect.Type, s map[string]any) {
		s = objectSchema(s, defs)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch {
		case walked[typ]:
			return
		case typ == reflect.TypeFor[time.Time](), typ == reflect.TypeFor[netip.Addr](), typ == reflect.TypeFor[netip.AddrPort]():
			return
		case typ.Kind() == reflect.Slice:
			if items, ok := s["items"].(map[string]any); ok {
				walk(path+"[]", typ.Elem(), items)
			} else if typ.Elem().Kind() == reflect.Struct {
				problems = append(problems, path+": no items in the schema")
			}
			return
		case typ.Kind() == reflect.Map:
			if _, ok := s["additionalProperties"].(map[string]any); !ok {
				problems = append(problems, path+": a map without additionalProperties in the schema")
			}
			return
		case typ.Kind() != reflect.Struct:
			return
		}
		walked[typ] = true
		defer delete(walked, typ)
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			problems = append(problems, path+": not an object with properties in the schema")
			return
		}
		seen := map[string]bool{}
		// encoding/json promotes the fields of an embedded struct without a tag.
		for _, f := range reflect.VisibleFields(typ) {
			if f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			seen[name] = true
			ps, ok := props[name].(map[string]any)
			if !ok {
				problems = append(problems, path+"."+name+": in the Go model, not in schema.json")
				continue
			}
			walk(path+"."+name, f.Type, ps)
		}
		for name := range props {
			if !seen[name] {
				problems = append(problems, path+"."+name+": in schema.json, not in the Go model")
			}
		}
	}
	walk("report", reflect.TypeFor[Report](), doc)
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// objectSchema follows $ref, and picks the non-null branch of a oneOf or anyOf.
func objectSchema(s map[string]any, defs map[string]any) map[string]any {
	for {
		if ref, ok := s["$ref"].(string); ok && strings.HasPrefix(ref, "#/$defs/") {
			s = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			continue
		}
		var branches []any
		for _, k := range []string{"oneOf", "anyOf", "allOf"} {
			if b, ok := s[k].([]any); ok {
				branches = b
			}
		}
		next := map[string]any(nil)
		for _, b := range branches {
			bm := b.(map[string]any)
			if bm["type"] == "null" || bm["const"] != nil {
				continue
			}
			next = bm
		}
		if next == nil || s["properties"] != nil || s["items"] != nil {
			return s
		}
		s = next
	}
}

// TestVerdictWordsInSchema: every outcome and stage the verdict gives is a word of the
// schema, in the schema's path order, so a renamed value in package verdict cannot slip
// into the JSON past VerdictOf.
func TestVerdictWordsInSchema(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(Schema(), &doc); err != nil {
		t.Fatal(err)
	}
	defs := obj(doc, "$defs")
	words := func(def string) []string {
		var out []string
		for _, w := range obj(defs, def)["enum"].([]any) {
			out = append(out, w.(string))
		}
		return out
	}
	var outcomes, stages []string
	for _, o := range verdict.Outcomes {
		outcomes = append(outcomes, VerdictOf(verdict.Verdict{Outcome: o}, prose.Text{}).Outcome)
	}
	for _, s := range verdict.Path {
		stages = append(stages, VerdictOf(verdict.Verdict{Stage: s}, prose.Text{}).Stage)
	}
	if want := words("outcome"); !slices.Equal(outcomes, want) {
		t.Errorf("the verdict's outcomes are %q, the schema's %q", outcomes, want)
	}
	if want := words("stage"); !slices.Equal(stages, want) {
		t.Errorf("the verdict's stages are %q, the schema's %q", stages, want)
	}
}
