package v1

import "strings"

// MergeEnv concatenates KEY=VALUE lists; an entry whose key appeared
// earlier replaces it in place, so later lists override earlier ones and
// the first-seen order is kept. ExecSpec.Env is merged this way over the
// sandbox's defaults, on both sides of the protocol.
func MergeEnv(lists ...[]string) []string {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]string, 0, n)
	index := make(map[string]int, n)
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
