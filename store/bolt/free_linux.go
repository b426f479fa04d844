package bolt

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// freeBytes is the space unprivileged writers may still use on the file
// system holding path.
func freeBytes(path string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
