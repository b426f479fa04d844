package store

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on a draft, counted in Unicode code points after trimming.
const (
	MaxInfoLen   = 4096
	MaxSourceLen = 2048
)

// TimeLayout is how created_at is written: always with microseconds, so
// that it has a fixed shape that sorts as text.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FieldError names one invalid field of a request and says what is wrong.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Normalize trims the surrounding white space of both fields.
func (d Draft) Normalize() Draft {
	return Draft{Info: strings.TrimSpace(d.Info), Source: strings.TrimSpace(d.Source)}
}

// Validate checks a normalized draft and returns one error per bad field,
// with field names prefixed by prefix (for example "[3].").
func (d Draft) Validate(prefix string) []FieldError {
	var errs []FieldError
	if msg := checkInfo(d.Info); msg != "" {
		errs = append(errs, FieldError{Field: prefix + "info", Detail: msg})
	}
	if msg := checkSource(d.Source); msg != "" {
		errs = append(errs, FieldError{Field: prefix + "source", Detail: msg})
	}
	return errs
}

func checkInfo(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return "is required and must not be blank"
	case n > MaxInfoLen:
		return fmt.Sprintf("must be at most %d characters, got %d", MaxInfoLen, n)
	}
	for _, r := range s {
		if r == utf8.RuneError {
			// A replacement character in valid UTF-8 is legitimate text.
			continue
		}
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return fmt.Sprintf("must not contain control character %U", r)
		}
	}
	return ""
}

func checkSource(s string) string {
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > MaxSourceLen {
		return fmt.Sprintf("must be at most %d characters, got %d", MaxSourceLen, n)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "must be an absolute http or https URL"
	}
	if scheme := strings.ToLower(u.Scheme); (scheme != "http" && scheme != "https") || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	return ""
}

// newFact turns a draft into a fact at the given seq.
func newFact(seq uint64, d Draft, now time.Time) (Fact, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Fact{}, fmt.Errorf("new fact id: %w", err)
	}
	return Fact{
		ID:        id.String(),
		Seq:       seq,
		Info:      d.Info,
		Source:    d.Source,
		CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, nil
}

type factJSON struct {
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Info      string `json:"info"`
	Source    string `json:"source"`
	CreatedAt string `json:"created_at"`
}

// MarshalJSON writes created_at with exactly six fractional digits.
func (f Fact) MarshalJSON() ([]byte, error) {
	return f.AppendJSON(nil), nil
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (f *Fact) UnmarshalJSON(b []byte) error {
	var v factJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, v.CreatedAt)
	if err != nil {
		return fmt.Errorf("fact created_at: %w", err)
	}
	*f = Fact{ID: v.ID, Seq: v.Seq, Info: v.Info, Source: v.Source, CreatedAt: t.UTC()}
	return nil
}
