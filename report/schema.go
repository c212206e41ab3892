package report

import _ "embed"

// schema is the JSON Schema (draft 2020-12) of the report: every name, type and enum of
// the JSON form. A test validates every recorded report against it and checks that it
// covers every field of the Go model.
//
//go:embed schema.json
var schema []byte

// Schema returns the report's JSON Schema, for scripts that consume the JSON report.
func Schema() []byte { return append([]byte(nil), schema...) }
