package listen

import "syscall"

// RaiseNoFile raises the soft limit on open files to the hard limit and
// returns both. Go's runtime has already done so at start (since Go
// 1.19, restoring the original soft limit in the processes it starts);
// this only calls setrlimit when that did not happen, so exec backends
// keep getting the original soft limit.
func RaiseNoFile() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		raised := syscall.Rlimit{Cur: r.Max, Max: r.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			r = raised
		}
	}
	return r.Cur, r.Max, nil
}
