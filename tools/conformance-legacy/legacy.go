// Package legacy only pins the 2023 distribution-spec conformance suite (see go.mod); the import
// keeps its dependencies in go.sum.
package legacy

import _ "github.com/opencontainers/distribution-spec/conformance"
