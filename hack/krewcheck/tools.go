//go:build tools

// Package krewcheck pins sigs.k8s.io/krew, whose own manifest validator
// (cmd/validate-krew-manifest: krew's index validation, ValidatePlugin, and
// its platform checks) and krew binary hack/release.sh and the krew
// end-to-end test run, in a module of its own so that ephem's go.mod does not
// grow:
//
//	cd hack/krewcheck && go run sigs.k8s.io/krew/cmd/validate-krew-manifest -manifest ephem.yaml -skip-install
//	cd hack/krewcheck && go build -o krew sigs.k8s.io/krew/cmd/krew
package krewcheck

import (
	_ "sigs.k8s.io/krew/cmd/krew/cmd" // keeps krew and its commands' dependencies in go.mod
)
