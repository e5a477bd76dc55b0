// Package program locates and checks what an exec backend runs: the
// program, its working directory and the user it runs as. The config
// validator (ferry validate and serve's load) and the exec backend use the
// same checks, so a config that validates starts.
package program

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Resolve returns the path of the program name for a process started in
// dir: a name without a slash is looked up in PATH; a relative path with a
// slash is taken relative to dir (as os/exec does when Cmd.Dir is set). The
// program must be an executable regular file.
func Resolve(name, dir string) (string, error) {
	if name == "" {
		return "", errors.New("no program named")
	}
	if !strings.ContainsRune(name, filepath.Separator) {
		p, err := exec.LookPath(name)
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return "", fmt.Errorf("command %q not found in PATH", name)
			}
			return "", fmt.Errorf("command %q: %w", name, err)
		}
		return p, nil
	}
	path := name
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("command %q does not exist", path)
	case err != nil:
		return "", fmt.Errorf("command %q: %w", path, err)
	case fi.IsDir():
		return "", fmt.Errorf("command %q is a directory", path)
	case fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("command %q is not executable", path)
	}
	return name, nil
}

// CheckDir checks that dir, when set, is an existing directory.
func CheckDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("directory %q does not exist", dir)
	case err != nil:
		return fmt.Errorf("directory %q: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%q is not a directory", dir)
	}
	return nil
}

// Credential resolves spec, a user name or "uid[:gid]", to the credential
// a child process runs with. A name must exist in the user database; its
// primary group is the gid, and its supplementary groups are kept. A
// numeric uid without a gid takes the gid of that uid's entry when there is
// one, else the same number. An empty spec is nil: run as Ferry's user.
//
// Changing to another user needs root (or CAP_SETUID/CAP_SETGID); Credential
// reports that when Ferry runs without root and spec names another user.
func Credential(spec string) (*syscall.Credential, error) {
	if spec == "" {
		return nil, nil
	}
	uidS, gidS, hasGid := strings.Cut(spec, ":")
	var cred *syscall.Credential
	if uid, err := strconv.ParseUint(uidS, 10, 32); err == nil {
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
		if u, err := user.LookupId(uidS); err == nil {
			if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
				cred.Gid = uint32(g)
			}
		}
	} else {
		if hasGid {
			return nil, fmt.Errorf("user %q: use a name or uid[:gid]", spec)
		}
		u, err := user.Lookup(spec)
		if err != nil {
			return nil, fmt.Errorf("user %q does not exist", spec)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("user %q has no numeric uid and gid", spec)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(g) != cred.Gid {
					cred.Groups = append(cred.Groups, uint32(g))
				}
			}
		}
	}
	if hasGid {
		g, err := strconv.ParseUint(gidS, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: the gid %q is not a number", spec, gidS)
		}
		cred.Gid = uint32(g)
	}
	if os.Geteuid() != 0 {
		if int(cred.Uid) != os.Geteuid() || int(cred.Gid) != os.Getegid() {
			return nil, fmt.Errorf("user %q: running as another user needs Ferry to run as root", spec)
		}
		cred.Groups, cred.NoSetGroups = nil, true
	}
	return cred, nil
}
