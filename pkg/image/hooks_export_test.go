package image

// SetLowerdirPlus makes the Store take the kernel's overlayfs to accept
// (or not) "lowerdir+", and returns a function restoring the probe.
func SetLowerdirPlus(ok bool) func() {
	old := lowerdirPlus
	lowerdirPlus = func() bool { return ok }
	return func() { lowerdirPlus = old }
}

// MaxOverlayLayers exposes maxOverlayLayers.
const MaxOverlayLayers = maxOverlayLayers
