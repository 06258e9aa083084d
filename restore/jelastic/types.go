package jelastic

// EnvInfo describes one environment, as GetEnvInfo, GetEnvs and CloneEnv
// report it.
type EnvInfo struct {
	Name        string // env.envName
	AppID       string // env.appid
	Domain      string // env.domain, e.g. "client-x.example-hoster.ch"
	DisplayName string // env.displayName, may be empty
	Status      Status // env.status
	CreatedOn   string // env.createdOn as the platform formats it
	Nodes       []Node
	NodeGroups  []string // names from nodeGroups[], else derived from Nodes
}

// Node is one container of an environment.
type Node struct {
	ID        int    // id (nodeid / nodeId in some responses)
	NodeGroup string // "cp", "sqldb", "storage", ...
	NodeType  string // "apache2", "postgres15", ...
	Name      string
	IsMaster  bool   // ismaster / isMaster
	Status    int    // 1 while the node runs
	IntIP     string // internal IP
	Address   string // address; the platform sets it to the internal IP
	URL       string
}

// Group returns the nodes of the named node group, in response order.
func (e *EnvInfo) Group(group string) []Node {
	var out []Node
	for _, n := range e.Nodes {
		if n.NodeGroup == group {
			out = append(out, n)
		}
	}
	return out
}

// Master returns the master node of a node group, or its first node when
// none is flagged as master.
func (e *EnvInfo) Master(group string) (Node, bool) {
	nodes := e.Group(group)
	for _, n := range nodes {
		if n.IsMaster {
			return n, true
		}
	}
	if len(nodes) > 0 {
		return nodes[0], true
	}
	return Node{}, false
}

// CmdResult is one node's outcome of an ExecCmd* call.
type CmdResult struct {
	NodeID     int
	Result     int // 0, or CodeCommandFailed when the command exited non-zero
	ExitStatus int
	Out        string
	ErrOut     string
	Error      string // per-node error text, when the platform gives one
}

// UserInfo is the account a token belongs to.
type UserInfo struct {
	UID   int
	Email string
	Name  string
}

// Wire shapes. encoding/json matches field names case-insensitively, which
// covers nodeid/nodeId and ismaster/isMaster; the flex* types absorb numbers
// sent as strings and nulls.

type wireEnv struct {
	EnvName     flexString `json:"envName"`
	AppID       flexString `json:"appid"`
	Domain      flexString `json:"domain"`
	DisplayName flexString `json:"displayName"`
	Status      flexInt    `json:"status"`
	CreatedOn   flexString `json:"createdOn"`
}

type wireNode struct {
	ID          flexInt    `json:"id"`
	NodeID      flexInt    `json:"nodeid"`
	NodeGroup   flexString `json:"nodeGroup"`
	NodeMission flexString `json:"nodemission"`
	NodeType    flexString `json:"nodeType"`
	Name        flexString `json:"name"`
	IsMaster    flexBool   `json:"ismaster"`
	Status      flexInt    `json:"status"`
	IntIP       flexString `json:"intIP"`
	Address     flexString `json:"address"`
	URL         flexString `json:"url"`
}

type wireNodeGroup struct {
	Name flexString `json:"name"`
}

type wireEnvInfo struct {
	Env        *wireEnv        `json:"env"`
	Nodes      []wireNode      `json:"nodes"`
	NodeGroups []wireNodeGroup `json:"nodeGroups"`
}

type wireCmdResult struct {
	NodeID     flexInt    `json:"nodeid"`
	ID         flexInt    `json:"id"`
	Result     flexInt    `json:"result"`
	ExitStatus flexInt    `json:"exitStatus"`
	Out        flexString `json:"out"`
	ErrOut     flexString `json:"errOut"`
	Error      flexString `json:"error"`
}

type wireUserInfo struct {
	UID   flexInt    `json:"uid"`
	Email flexString `json:"email"`
	Name  flexString `json:"name"`
}

func (w *wireEnvInfo) envInfo() *EnvInfo {
	info := &EnvInfo{}
	if w.Env != nil {
		info.Name = string(w.Env.EnvName)
		info.AppID = string(w.Env.AppID)
		info.Domain = string(w.Env.Domain)
		info.DisplayName = string(w.Env.DisplayName)
		info.Status = Status(w.Env.Status)
		info.CreatedOn = string(w.Env.CreatedOn)
	}
	seen := map[string]bool{}
	for _, g := range w.NodeGroups {
		if name := string(g.Name); name != "" && !seen[name] {
			seen[name] = true
			info.NodeGroups = append(info.NodeGroups, name)
		}
	}
	for _, wn := range w.Nodes {
		n := Node{
			ID:        int(wn.ID),
			NodeGroup: string(wn.NodeGroup),
			NodeType:  string(wn.NodeType),
			Name:      string(wn.Name),
			IsMaster:  bool(wn.IsMaster),
			Status:    int(wn.Status),
			IntIP:     string(wn.IntIP),
			Address:   string(wn.Address),
			URL:       string(wn.URL),
		}
		if n.ID == 0 {
			n.ID = int(wn.NodeID)
		}
		if n.NodeGroup == "" {
			n.NodeGroup = string(wn.NodeMission)
		}
		if n.Address == "" {
			n.Address = n.IntIP
		}
		if n.IntIP == "" {
			n.IntIP = n.Address
		}
		if n.NodeGroup != "" && !seen[n.NodeGroup] {
			seen[n.NodeGroup] = true
			info.NodeGroups = append(info.NodeGroups, n.NodeGroup)
		}
		info.Nodes = append(info.Nodes, n)
	}
	return info
}

func (w *wireCmdResult) cmdResult() CmdResult {
	id := int(w.NodeID)
	if id == 0 {
		id = int(w.ID)
	}
	return CmdResult{
		NodeID:     id,
		Result:     int(w.Result),
		ExitStatus: int(w.ExitStatus),
		Out:        string(w.Out),
		ErrOut:     string(w.ErrOut),
		Error:      string(w.Error),
	}
}
