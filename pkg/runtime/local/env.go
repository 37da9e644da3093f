package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// maxEnviron bounds what is read of a target's /proc/PID/environ: Linux
// allows far more (a quarter of the stack limit), but a larger environment
// is not one to copy into a debug session.
const maxEnviron = 1 << 20

// targetEnv returns the environment process pid started with, from
// /proc/PID/environ, without PATH (the image's finds the tools) and without
// entries that are not NAME=VALUE. It is read on the host, before the
// debug container exists.
func targetEnv(pid int) ([]string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: process %d: %w", runtime.ErrTargetGone, pid, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading the target's environment: %w", runtime.ErrOS, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEnviron+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the target's environment: %w", runtime.ErrOS, err)
	}
	if len(b) > maxEnviron {
		return nil, fmt.Errorf("%w: the target's environment is larger than %d bytes: leave out --env-from-target and pass what you need with -e",
			runtime.ErrInvalidSpec, maxEnviron)
	}
	return parseEnviron(b), nil
}

// parseEnviron splits a NUL-separated environment, keeping NAME=VALUE
// entries other than PATH.
func parseEnviron(b []byte) []string {
	var env []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, _, ok := bytes.Cut(kv, []byte("="))
		if !ok || len(k) == 0 || string(k) == "PATH" {
			continue
		}
		env = append(env, string(kv))
	}
	return env
}

// mergeEnv joins environments, each overriding the ones before it: a name
// keeps the place it first had and the value it last had.
func mergeEnv(envs ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, env := range envs {
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// debugEnv is the debug command's environment: the target's (with
// --env-from-target), then the image's, then -e, each overriding what came
// before. init fills in PATH, HOME, HOSTNAME and TERM when none is set.
func debugEnv(target, image []string, vars []spec.EnvVar) []string {
	e := make([]string, len(vars))
	for i, v := range vars {
		e[i] = v.Name + "=" + v.Value
	}
	return mergeEnv(target, image, e)
}
