package config

import "github.com/ferrydev/ferry/internal/program"

// exec checks an exec backend the way the backend checks it when Ferry
// starts: the program exists and is executable, the directory exists, the
// user exists. A config that validates therefore starts.
func (v *validator) exec(p string, e *ExecBackend) {
	dirOK := true
	if err := program.CheckDir(e.Dir); err != nil {
		v.report(p+".dir", nil, "%v", err)
		dirOK = false
	}
	switch {
	case len(e.Command) == 0 || e.Command[0] == "":
		v.report(p+".command", nil, "must name a program to run")
	case dirOK:
		if _, err := program.Resolve(e.Command[0], e.Dir); err != nil {
			v.report(p+".command[0]", nil, "%v", err)
		}
	}
	if _, err := program.Credential(e.User); err != nil {
		v.report(p+".user", nil, "%v", err)
	}
}
