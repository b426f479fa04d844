// Package openapi serves the OpenAPI 3.1 description of the HTTP API. The
// document is written by hand in openapi.json and compiled into the binary;
// the black-box tests validate the running service's answers against it and
// check that it names every route, so it cannot drift from the code.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

//go:embed openapi.json
var document []byte

// Document returns the OpenAPI document with info.version set to version.
// Everything else is byte for byte the embedded file, so the order and
// layout written by hand are what readers see.
func Document(version string) ([]byte, error) {
	info, err := memberSpan(document, "info")
	if err != nil {
		return nil, err
	}
	v, err := memberSpan(document[info[0]:info[1]], "version")
	if err != nil {
		return nil, fmt.Errorf("info: %w", err)
	}
	quoted, err := json.Marshal(version)
	if err != nil {
		return nil, fmt.Errorf("encode version: %w", err)
	}
	start, end := info[0]+v[0], info[0]+v[1]
	out := make([]byte, 0, len(document)+len(quoted))
	out = append(out, document[:start]...)
	out = append(out, quoted...)
	return append(out, document[end:]...), nil
}

// memberSpan returns where the value of the top-level member name of the
// JSON object obj starts and ends.
func memberSpan(obj []byte, name string) ([2]int64, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return [2]int64{}, fmt.Errorf("openapi document: want a JSON object holding %q", name)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return [2]int64{}, fmt.Errorf("openapi document: %w", err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return [2]int64{}, fmt.Errorf("openapi document: member %v: %w", key, err)
		}
		if key == name {
			end := dec.InputOffset()
			return [2]int64{end - int64(len(value)), end}, nil
		}
	}
	return [2]int64{}, fmt.Errorf("openapi document: no member %q", name)
}

// Handler serves the document with info.version set to version. The
// document changes with the version, so caches revalidate it on every use
// (no-cache) and get a 304 while its ETag still matches.
//
// It panics if the embedded document is not a JSON object with an info
// object: a build mistake that the tests rule out, not a runtime condition.
func Handler(version string) http.Handler {
	body, err := Document(version)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}
