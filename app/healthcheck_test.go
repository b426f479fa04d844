package app

import "testing"

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{":3000", "http://127.0.0.1:3000/healthz"},
		{"0.0.0.0:3000", "http://127.0.0.1:3000/healthz"},
		{"[::]:3000", "http://127.0.0.1:3000/healthz"},
		{"127.0.0.1:8080", "http://127.0.0.1:8080/healthz"},
		{"[::1]:8080", "http://[::1]:8080/healthz"},
		{"factstream:3000", "http://factstream:3000/healthz"},
	} {
		got, err := healthURL(tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
	if _, err := healthURL("3000"); err == nil {
		t.Error(`healthURL("3000") accepted an address without a port separator`)
	}
}
