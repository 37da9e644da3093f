package image

import "time"

// SetRetryBackoff shortens registry retries for a test and returns a
// function restoring them.
func SetRetryBackoff(d time.Duration) func() {
	old := retryBackoff
	retryBackoff.Duration = d
	return func() { retryBackoff = old }
}

// OwnerTag exposes ownerTag, the creator tag in a new entry's name.
func OwnerTag() string { return ownerTag() }
