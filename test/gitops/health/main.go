// Command gitops-health reads Kubernetes objects (YAML files) and prints, as
// one JSON array, what Argo CD and Flux would make of each:
//
//   - Argo CD: a health.lua script run the way Argo CD runs it (util/lua in
//     argoproj/argo-cd): gopher-lua with only the package, base and table
//     libraries open, the object as the global `obj`, the returned table's
//     status and message, and Unknown for a status Argo CD does not know;
//   - Flux and kstatus: sigs.k8s.io/cli-utils' kstatus.Compute, the library
//     Flux's `wait: true` and `kubectl`-side tooling judge readiness with.
//
// Usage: gitops-health HEALTH.lua OBJECT.yaml...
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// verdict is one tool's answer for one object.
type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type result struct {
	File    string  `json:"file"`
	ArgoCD  verdict `json:"argocd"`
	Kstatus verdict `json:"kstatus"`
}

// argoHealthCodes are the statuses Argo CD accepts from a health script.
var argoHealthCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gitops-health HEALTH.lua OBJECT.yaml...")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	results := []result{}
	for _, file := range os.Args[2:] {
		obj, err := readObject(file)
		if err != nil {
			fail(fmt.Errorf("%s: %w", file, err))
		}
		health, err := argoHealth(obj, string(script))
		if err != nil {
			fail(fmt.Errorf("%s: health.lua: %w", file, err))
		}
		computed, err := status.Compute(obj)
		if err != nil {
			fail(fmt.Errorf("%s: kstatus: %w", file, err))
		}
		results = append(results, result{
			File:    file,
			ArgoCD:  health,
			Kstatus: verdict{Status: computed.Status.String(), Message: computed.Message},
		})
	}
	out, _ := json.MarshalIndent(results, "", "  ")
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func readObject(file string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// As the API server's JSON: integers arrive as int64, which Argo CD's decoder turns into Lua numbers.
	asJSON, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(asJSON); err != nil {
		return nil, err
	}
	return obj, nil
}

// argoHealth runs a health script as Argo CD's VM.ExecuteHealthLua does.
func argoHealth(obj *unstructured.Unstructured, script string) (verdict, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return verdict{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return verdict{}, err
	}
	returned, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return verdict{}, fmt.Errorf("health.lua returned %s, not a table", l.Get(-1).Type())
	}
	health := verdict{Status: lua.LVAsString(returned.RawGetString("status")), Message: lua.LVAsString(returned.RawGetString("message"))}
	if !argoHealthCodes[health.Status] {
		return verdict{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return health, nil
}

// decodeValue is Argo CD's conversion of an unstructured object into Lua values.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}
