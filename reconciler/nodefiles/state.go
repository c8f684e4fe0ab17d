package nodefiles

import (
	"encoding/json"
	"fmt"
)

// StateVersion is the version of the state file format.
const StateVersion = 1

// AppState is /var/lib/bakery/apps/<app>/state.json: what Bakery last
// established for an app on a node. It is written atomically after every
// switch, so that a control plane that died mid-rollout can tell from the
// node what is serving.
type AppState struct {
	Version int    `json:"version"`
	App     string `json:"app"`
	// Active is the slot nginx sends traffic to ("" before the first switch).
	Active string `json:"active"`
	// Slots holds what each slot was last given.
	Slots map[string]SlotState `json:"slots"`
	// Dockerized says whether the app runs under docker.
	Dockerized bool `json:"dockerized"`
	// Revision is the deployment revision that the active slot serves.
	Revision int64 `json:"revision"`
}

// SlotState is one slot's record in the state file.
type SlotState struct {
	Commit string `json:"commit,omitempty"`
	// Release is the release directory the slot runs from (ReleaseID).
	Release  string `json:"release,omitempty"`
	Port     int    `json:"port,omitempty"`
	Revision int64  `json:"revision,omitempty"`
	// SpecHash identifies the runtime-relevant spec the slot was started
	// with (command, env, port): a change means the slot must be redone.
	SpecHash string `json:"specHash,omitempty"`
}

// ParseState decodes a state file.
func ParseState(b []byte) (*AppState, error) {
	var s AppState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state.json: %w", err)
	}
	if s.Version != StateVersion {
		return nil, fmt.Errorf("state.json: unsupported version %d", s.Version)
	}
	if s.Active != "" && s.Active != Blue && s.Active != Green {
		return nil, fmt.Errorf("state.json: bad active slot %q", s.Active)
	}
	if s.Slots == nil {
		s.Slots = map[string]SlotState{}
	}
	return &s, nil
}

// Marshal encodes the state file.
func (s *AppState) Marshal() []byte {
	s.Version = StateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // plain data
	}
	return append(b, '\n')
}
