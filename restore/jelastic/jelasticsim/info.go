package jelasticsim

import (
	"fmt"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// nodeLabel is the display name the platform gives a node type.
func nodeLabel(nodeType string) string {
	switch nodeType {
	case "apache2":
		return "Apache 2"
	case "postgres15":
		return "PostgreSQL 15"
	}
	return nodeType
}

// nodeIP derives a stable internal address from a node id.
func nodeIP(id int) string {
	return fmt.Sprintf("10.%d.%d.%d", 100+(id>>16)&0x7f, (id>>8)&0xff, id&0xff)
}

// envInfo renders an environment the way GetEnvInfo does on the platform:
// lower-case ismaster, nodes[] with id and nodeGroup, nodeGroups[] and the
// usual empty lists.
func (s *Server) envInfo(st *envState) response {
	domain := st.EnvName + "." + s.cfg.Domain
	nodeStatus := 1
	if st.Status != int(jelastic.StatusRunning) {
		nodeStatus = 2
	}
	nodes := make([]response, 0, len(st.Nodes))
	var groups []response
	seen := map[string]bool{}
	for _, n := range st.Nodes {
		ip := nodeIP(n.ID)
		node := response{
			"id": n.ID, "nodeGroup": n.NodeGroup, "nodeType": n.NodeType, "nodemission": n.NodeGroup,
			"name": nodeLabel(n.NodeType), "ismaster": true, "status": nodeStatus,
			"intIP": ip, "address": ip,
			"url":            fmt.Sprintf("http://node%d-%s", n.ID, domain),
			"adminUrl":       fmt.Sprintf("http://%s%d-%s", n.NodeGroup, n.ID, domain),
			"fixedCloudlets": 1, "flexibleCloudlets": 8, "diskLimit": 100000,
			"osType": "LINUX", "type": "NATIVE", "port": 22, "user": "root",
			"restarts": n.Restarts,
		}
		if n.LastRestart != "" {
			node["lastRestart"] = n.LastRestart
		}
		nodes = append(nodes, node)
		if !seen[n.NodeGroup] {
			seen[n.NodeGroup] = true
			groups = append(groups, response{
				"name": n.NodeGroup, "scalingMode": "STATEFUL", "templateType": "NATIVE",
				"vType": "CT", "isSLBAccessEnabled": true, "features": []string{}, "deployments": []string{},
			})
		}
	}
	return response{
		"right": "OWNER",
		"env": response{
			"appid": st.AppID, "envName": st.EnvName, "shortdomain": st.EnvName, "domain": domain,
			"displayName": st.EnvName, "status": st.Status, "createdOn": st.CreatedOn,
			"creatorUid": simUID, "uid": simUID,
			"isFirewallEnabled": false, "isTransferring": false, "ishaenabled": false, "sslstate": false,
			"contexts": []string{}, "extdomains": []string{},
		},
		"envGroups":            []string{},
		"nodeGroups":           groups,
		"nodes":                nodes,
		"nodesData":            []string{},
		"nodesInternalDomains": []string{},
	}
}
