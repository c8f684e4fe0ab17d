package api

import "encoding/json"

// Node is a Linux host that Bakery reaches over SSH.
type Node struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     NodeSpec   `json:"spec"`
	Status   NodeStatus `json:"status,omitempty"`
}

// NodeSpec is the desired state of a Node. Selectors (Deployment
// spec.nodeSelector) match the node's metadata.labels.
type NodeSpec struct {
	// Address is the host name or IP address sshd listens on.
	Address string `json:"address,omitempty"`
	// Port is sshd's port (default 22).
	Port int `json:"port,omitempty"`
	// User is the remote user (default bakery-agent).
	User string `json:"user,omitempty"`
	// HostKey pins the node's SSH host public key, in authorized_keys
	// form ("ssh-ed25519 AAAA…"). Empty means trust on first use: the key
	// seen first is recorded in status and pinned from then on.
	HostKey string `json:"hostKey,omitempty"`
	// Via names another Node used as a jump host.
	Via string `json:"via,omitempty"`
	// Local runs commands on the control plane's own host instead of SSH,
	// as the server's user. Refused (API, web UI, manifest sources, the
	// watched directory) and never run unless the server is started with
	// --allow-local-nodes.
	Local bool `json:"local,omitempty"`
}

// NodeStatus is the observed state of a Node, written by the control plane.
type NodeStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	// Reachable is the result of the last connection attempt.
	Reachable         bool   `json:"reachable,omitempty"`
	LastHandshakeTime *Time  `json:"lastHandshakeTime,omitempty"`
	LastError         string `json:"lastError,omitempty"`
	// HostKey is the host key seen (and pinned) by the control plane.
	HostKey            string `json:"hostKey,omitempty"`
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
	OS                 string `json:"os,omitempty"`
	Kernel             string `json:"kernel,omitempty"`
	// Tools lists the tools found on the node (git, systemctl, docker, nginx, certbot, curl, zstd).
	Tools          []string        `json:"tools,omitempty"`
	Disk           *DiskUsage      `json:"disk,omitempty"`
	LastDeployment *LastDeployment `json:"lastDeployment,omitempty"`
}

// DiskUsage is what Bakery uses on a node and what the filesystem has left.
type DiskUsage struct {
	BakeryBytes     int64 `json:"bakeryBytes"`
	FilesystemBytes int64 `json:"filesystemBytes"`
	FreeBytes       int64 `json:"freeBytes"`
}

// LastDeployment records the last successful deployment on a node.
type LastDeployment struct {
	Deployment string `json:"deployment"`
	Commit     string `json:"commit,omitempty"`
	Revision   int64  `json:"revision,omitempty"`
	Time       *Time  `json:"time,omitempty"`
}

// GetTypeMeta implements Object.
func (n *Node) GetTypeMeta() *TypeMeta { return &n.TypeMeta }

// GetObjectMeta implements Object.
func (n *Node) GetObjectMeta() *ObjectMeta { return &n.Metadata }

// DeepCopyObject implements Object.
func (n *Node) DeepCopyObject() Object { return deepCopy(n) }

// SpecJSON implements Object.
func (n *Node) SpecJSON() json.RawMessage { return mustJSON(n.Spec) }

// StatusJSON implements Object.
func (n *Node) StatusJSON() json.RawMessage { return mustJSON(n.Status) }

// SetSpecJSON implements Object.
func (n *Node) SetSpecJSON(b json.RawMessage) error {
	var s NodeSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	n.Spec = s
	return nil
}

// SetStatusJSON implements Object.
func (n *Node) SetStatusJSON(b json.RawMessage) error {
	var s NodeStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	n.Status = s
	return nil
}

// Default implements Object.
func (n *Node) Default() {
	if n.Spec.Port == 0 && !n.Spec.Local {
		n.Spec.Port = 22
	}
	if n.Spec.User == "" && !n.Spec.Local {
		n.Spec.User = DefaultNodeUser
	}
}

// DefaultNodeUser is the remote user Bakery logs in as.
const DefaultNodeUser = "bakery-agent"
