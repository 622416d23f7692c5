//go:build tools

// Package tools pins the programs this module builds from other modules (see hack/build-checks.sh).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
