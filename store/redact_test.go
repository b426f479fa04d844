package store

import (
	"errors"
	"testing"
)

func TestRedactHidesPasswords(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"Password", "redis://:s3cret@host:6379/0", "redis://:xxxxx@host:6379/0"},
		{"UserAndPassword", "rediss://app:s3cret@host/0?key_prefix=a:", "rediss://app:xxxxx@host/0?key_prefix=a:"},
		{"BadPort", "redis://:s3cret@127.0.0.1:notaport/0", "redis://:xxxxx@127.0.0.1:notaport/0"},
		{"NoPassword", "redis://app@host/0", "redis://app@host/0"},
		{"NotAURL", "bolt:data/facts.db", "bolt:data/facts.db"},
		{"OneSlash", "redis:/app:s3cret@host:6379/0", "redis:/app:xxxxx@host:6379/0"},
		{"NoSlash", "redis::s3cret@host", "redis::xxxxx@host"},
		{"BoltPathWithColon", "bolt:/srv/a:b/facts.db", "bolt:/srv/a:b/facts.db"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.spec); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.spec, got, tc.want)
			}
			err := errors.New(`parse "` + tc.spec + `": invalid port`)
			if got, want := RedactError(tc.spec, err), `parse "`+tc.want+`": invalid port`; got != want {
				t.Fatalf("RedactError = %q, want %q", got, want)
			}
		})
	}
}
