package kube

import (
	"bytes"
	"io"
	"net/url"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		return &url.URL{}
	}
	return u
}
