// Package config reads ephem's configuration files: the user's
// ($EPHEM_CONFIG, else $XDG_CONFIG_HOME/ephem/config.yaml, default
// ~/.config/ephem/config.yaml) over the system's (/etc/ephem/config.yaml).
//
// A file sets defaults for flags: the debug image (per backend too), the
// security profile, the pull policy, the cache directory, insecure
// registries and the audit log. Flags beat environment variables, which
// beat the user's file, which beats the system's; this package resolves
// the environment and the files (Config.Effective), the CLI adds flags.
// Decoding is strict: an unknown key, a value of the wrong type or YAML
// that does not parse is one error naming the file and the line, which
// wraps runtime.ErrConfig (exit 78).
package config
