package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The release's ephem is the local engine alone (built with the tag
// ephem_local): without client-go it starts in about half the time and
// holds about 13 MB less. A command line that may need Kubernetes (a
// Kubernetes target, a flag ephem does not know such as -n, --help,
// shell completion) is handed to kubectl-ephem, the build with every
// backend, by exec: same arguments, same terminal, same exit code. The
// full build does everything the local one does, so handing over too
// often costs a few milliseconds, never a different result; without
// kubectl-ephem the local build runs the command itself, and a
// Kubernetes target is refused (exit 64) with what to install.

// fullBuild is the name of the build with every backend, next to ephem
// or on $PATH.
const fullBuild = "kubectl-ephem"

// envHandedOver is set in the environment of a command line handed over,
// so that a local-only build installed as kubectl-ephem by mistake runs it
// rather than handing it over again.
const envHandedOver = "EPHEM_HANDED_OVER"

// handOver replaces the process with kubectl-ephem running args when
// this build lacks a backend args may need. It returns when it does not
// hand over, or cannot: then the command runs here.
func handOver(root *cobra.Command, args []string) {
	if !localOnly() || os.Getenv(envHandedOver) != "" || !needsFullBuild(root, args) {
		return
	}
	path := findFullBuild()
	if path == "" {
		return
	}
	env := append(os.Environ(), envHandedOver+"=1")
	// The user's own command line, run by kubectl-ephem next to this
	// executable or on the user's $PATH: nothing crosses a privilege
	// boundary. Exec returns only on failure.
	_ = syscall.Exec(path, append([]string{os.Args[0]}, args...), env) //nolint:gosec // G702: see above
}

// localOnly reports whether this build lacks the Kubernetes backend.
func localOnly() bool {
	_, kube := target.Lookup(target.SchemePod)
	return !kube
}

// fullBuildHint adds to err, an unknown target form or flag in a build
// without the Kubernetes backend, where that backend is.
func fullBuildHint(err error) error {
	if !localOnly() {
		return err
	}
	if errors.Is(err, target.ErrUnknownScheme) || strings.Contains(err.Error(), "unknown flag") || strings.Contains(err.Error(), "unknown shorthand flag") {
		return fmt.Errorf("%w (this ephem is the local engine alone: Kubernetes targets and flags need %s, the build with every backend, installed next to it or on $PATH)", err, fullBuild)
	}
	return err
}

// findFullBuild returns the path of kubectl-ephem: next to this
// executable, else on $PATH; "" if there is none, it is this very file,
// or, as root, one that another user could have written.
func findFullBuild() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	candidates := []string{filepath.Join(filepath.Dir(self), fullBuild)}
	if p, err := exec.LookPath(fullBuild); err == nil {
		candidates = append(candidates, p)
	}
	selfInfo, err := os.Stat(self)
	if err != nil {
		return ""
	}
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 && !os.SameFile(fi, selfInfo) && trusted(c, fi) {
			return c
		}
	}
	return ""
}

// trusted reports whether this process may run the file fi at path: as
// root, only a file root owns that no one else may write, in a directory
// the same holds for (ephem often runs as root; a kubectl-ephem another
// user could write or replace would run as root too).
func trusted(path string, fi os.FileInfo) bool {
	if os.Geteuid() != 0 {
		return true
	}
	dir, err := os.Stat(filepath.Dir(path))
	return err == nil && rootOnly(fi) && rootOnly(dir)
}

// rootOnly reports whether root owns fi and no one else may write it.
func rootOnly(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && fi.Mode().Perm()&0o022 == 0
}

// needsFullBuild reports whether args may need a backend that only the
// full build has: shell completion, help (which lists every backend's
// flags), a flag this build does not know, or a target of a form it does
// not know. It reads the arguments as cobra will, without parsing values.
func needsFullBuild(root *cobra.Command, args []string) bool {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd || args[0] == "help") {
		return true
	}
	cmd, rest, err := root.Find(args)
	if err != nil {
		return false // an unknown command: the error is the same here
	}
	var positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			return operandsNeedFull(cmd.Name(), positional)
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			f := lookupFlag(cmd, name, "")
			if f == nil || name == "help" {
				return true
			}
			if !hasValue && f.NoOptDefVal == "" {
				i++ // its value
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				f := lookupFlag(cmd, "", a[j:j+1])
				if f == nil || f.Name == "help" {
					return true
				}
				if f.NoOptDefVal == "" { // takes a value: the rest, or the next argument
					if j == len(a)-1 {
						i++
					}
					break
				}
			}
		default:
			positional = append(positional, a)
		}
	}
	return operandsNeedFull(cmd.Name(), positional)
}

// lookupFlag finds cmd's flag by name or shorthand, its own or inherited.
func lookupFlag(cmd *cobra.Command, name, short string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if name != "" {
			if f := fs.Lookup(name); f != nil {
				return f
			}
		} else if f := fs.ShorthandLookup(short); f != nil {
			return f
		}
	}
	return nil // cobra's own --help too: it adds that flag only when it runs
}

// operandsNeedFull reports whether verb's operands name a target of a
// form this build does not know: the first operand of a verb that takes a
// target, or a cp operand TARGET:PATH.
func operandsNeedFull(verb string, operands []string) bool {
	unknown := func(s string) bool {
		_, err := target.Parse(s)
		return errors.Is(err, target.ErrUnknownScheme)
	}
	switch {
	case targetVerbs[verb] && len(operands) > 0:
		return unknown(operands[0])
	case verb == "cp":
		for _, op := range operands {
			if _, _, local := splitRemote(op); local {
				continue
			}
			if i := strings.Index(op, ":/"); i > 0 && unknown(op[:i]) {
				return true
			}
		}
	}
	return false
}
