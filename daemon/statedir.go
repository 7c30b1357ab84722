package daemon

import (
	"fmt"
	"os"
	"syscall"
)

// CheckStateDir refuses a state dir that others could change: one owned
// by another user than this process's, or writable by its group or by
// others. Whoever can write to it can replace the control socket, the
// database or the hold binary that containers run. Mode 0711, which the
// Docker API proxy sets so that Docker's group can reach the proxy's
// socket inside, is fine: it lets others through, not write.
func CheckStateDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("state dir %s is not a directory; choose another with --state-dir", dir)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state dir %s is owned by uid %d, not by this user (uid %d), who could change what the router trusts; "+
			"run 'chown %d %s' or choose another with --state-dir", dir, st.Uid, os.Geteuid(), os.Geteuid(), dir)
	}
	if perm := info.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("state dir %s has mode %04o: its group or others can write to it and replace the control socket or the database; "+
			"run 'chmod go-w %s' (0700 is best) or choose another with --state-dir", dir, perm, dir)
	}
	return nil
}
