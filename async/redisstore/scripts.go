package redisstore

import (
	"context"
	"embed"
	"strconv"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

func lua(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("redisstore: missing script " + name) // a build error: the files are embedded
	}
	return string(b)
}

// tenantScript is a script over one tenant's keys: the prelude (tag, now,
// hints, reaping) and gcra_take, then the script's own body.
func tenantScript(name string) *redis.Script {
	return redis.NewScript(lua("prelude") + "\n" + lua("gcra") + "\n" + lua(name))
}

// The scripts. Every state change of a task is one of them.
var (
	scriptEnqueue = tenantScript("enqueue")
	scriptLease   = tenantScript("lease")
	scriptFinish  = tenantScript("finish")
	scriptCancel  = tenantScript("cancel")
	scriptSetRec  = tenantScript("setrec")
	scriptClaim   = tenantScript("claim")
	scriptUpkeep  = tenantScript("upkeep")
	scriptExtend  = tenantScript("extend")
	scriptPick    = redis.NewScript(lua("pick"))
	scriptHints   = redis.NewScript(lua("hints"))

	allScripts = []*redis.Script{scriptEnqueue, scriptLease, scriptFinish, scriptCancel, scriptSetRec,
		scriptClaim, scriptUpkeep, scriptExtend, scriptPick, scriptHints}
)

// loadScripts loads every script (SCRIPT LOAD), which also checks that
// Redis runs Lua at all.
func loadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	for _, s := range allScripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// tenantRun runs a tenant script: KEYS[1] is the tenant's meta key (it
// routes the call to the tenant's slot), ARGV[1] its hash tag, ARGV[2] the
// clock skew.
func (q *Queue) tenantRun(ctx context.Context, s *redis.Script, tenant string, args ...any) ([]any, error) {
	tag := q.keys.tenant(tenant)
	argv := make([]any, 0, len(args)+2)
	argv = append(argv, tag, q.skew())
	argv = append(argv, args...)
	return s.Run(ctx, q.rdb, []string{tag + ":meta"}, argv...).Slice()
}

// str and num read script results.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
