package ingest

import (
	"github.com/google/go-containerregistry/pkg/authn"
)

// envKeychain takes registry credentials from the environment, ahead of
// the docker config (CI jobs have secrets in env, not in a config file):
//
//	AGENTKERNEL_REGISTRY_USERNAME / AGENTKERNEL_REGISTRY_PASSWORD  basic auth
//	AGENTKERNEL_REGISTRY_TOKEN                                     an identity (refresh) token
//	AGENTKERNEL_REGISTRY                                           limit them to this registry (host[:port])
type envKeychain struct {
	getenv func(string) string
}

func (k envKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if host := k.getenv("AGENTKERNEL_REGISTRY"); host != "" && host != r.RegistryStr() {
		return authn.Anonymous, nil
	}
	user, pass := k.getenv("AGENTKERNEL_REGISTRY_USERNAME"), k.getenv("AGENTKERNEL_REGISTRY_PASSWORD")
	token := k.getenv("AGENTKERNEL_REGISTRY_TOKEN")
	switch {
	case user != "" || pass != "":
		return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
	case token != "":
		return authn.FromConfig(authn.AuthConfig{IdentityToken: token}), nil
	}
	return authn.Anonymous, nil
}
