package check

import "strings"

// Endpoint says what a Patroni health endpoint promises when it answers 200,
// and so what the body must show before this node is called eligible.
type Endpoint struct {
	// Name is what "eligible" means on this endpoint, for people:
	// "primary", "replica", "healthy"...
	Name string
	// Roles lists the Patroni roles that fit the endpoint; nil accepts any.
	Roles []string
	// JSON is false for endpoints that answer with a status line only.
	JSON bool
}

// Roles as Patroni reports them: "master" up to 3.x, "primary" from 4.0.
var (
	primaryRoles       = []string{"master", "primary"}
	standbyLeaderRoles = []string{"standby_leader"}
	leaderRoles        = []string{"master", "primary", "standby_leader"}
	replicaRoles       = []string{"replica"}
)

// EndpointFor maps a URL path to the endpoint Patroni will route it to.
// Patroni matches health paths by substring, in this order (patroni/api.py,
// RestApiHandler.do_GET), so "/read-write" and "/primary" are the same
// question; the order below follows it.
func EndpointFor(path string) Endpoint {
	switch p := strings.TrimRight(path, "/"); {
	case p == "":
		return Endpoint{Name: "primary", Roles: primaryRoles, JSON: true} // Patroni serves "/" as "/primary"
	case p == "/liveness":
		return Endpoint{Name: "alive"}
	case p == "/readiness":
		return Endpoint{Name: "ready"}
	case strings.Contains(p, "standby_leader"), strings.Contains(p, "standby-leader"):
		return Endpoint{Name: "standby leader", Roles: standbyLeaderRoles, JSON: true}
	case strings.Contains(p, "leader"):
		return Endpoint{Name: "leader", Roles: leaderRoles, JSON: true}
	case strings.Contains(p, "master"), strings.Contains(p, "primary"), strings.Contains(p, "read-write"):
		return Endpoint{Name: "primary", Roles: primaryRoles, JSON: true}
	case strings.Contains(p, "replica"):
		return Endpoint{Name: "replica", Roles: replicaRoles, JSON: true}
	case strings.Contains(p, "read-only"):
		// The leader or a replica: only the state is ours to check.
		return Endpoint{Name: "read-only", JSON: true}
	case strings.Contains(p, "health"):
		return Endpoint{Name: "healthy", JSON: true}
	case p == "/sync", p == "/synchronous":
		return Endpoint{Name: "sync replica", Roles: replicaRoles, JSON: true}
	case p == "/async", p == "/asynchronous":
		return Endpoint{Name: "async replica", Roles: replicaRoles, JSON: true}
	default:
		return Endpoint{Name: "eligible", JSON: true}
	}
}

// fits reports whether role is one the endpoint accepts.
func (e Endpoint) fits(role string) bool {
	if e.Roles == nil {
		return true
	}
	for _, r := range e.Roles {
		if r == role {
			return true
		}
	}
	return false
}
