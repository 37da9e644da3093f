package cli

import _ "github.com/ephem-dev/ephem/pkg/runtime/backends" // the real backends, as main has them
