package store

import (
	"fmt"
	"strings"
)

// Kind names the backend a store specification selects: "memory", "bolt" or
// "redis".
func Kind(spec string) (string, error) {
	switch {
	case spec == "memory:" || spec == "memory":
		return "memory", nil
	case strings.HasPrefix(spec, "bolt:"):
		if strings.TrimPrefix(spec, "bolt:") == "" {
			return "", fmt.Errorf("bolt store needs a path, as in bolt:data/facts.db")
		}
		return "bolt", nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		return "redis", nil
	default:
		return "", fmt.Errorf("unknown store %q: use memory:, bolt:<path> or redis://host:port/db", Redact(spec))
	}
}
