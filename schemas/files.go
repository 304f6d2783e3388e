package schemas

import "embed"

// Files holds the JSON Schema documents, named <schema>.schema.json.
//
//go:embed *.schema.json
var Files embed.FS
