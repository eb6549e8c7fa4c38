{{/* Labels every object carries; deploy/ carries the first, Helm adds the other two. */}}
{{- define "prepull.labels" -}}
app.kubernetes.io/name: prepull
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The controller pods' selector. */}}
{{- define "prepull.selectorLabels" -}}
app.kubernetes.io/name: prepull
app.kubernetes.io/component: controller
{{- end -}}

{{/* The controller's image reference. */}}
{{- define "prepull.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default (printf "v%s" .Chart.AppVersion)) -}}
{{- end -}}

{{/* The image the operator uses when --agent-image is not given (src/version.ts releasedImage). */}}
{{- define "prepull.releasedImage" -}}
{{- printf "ghcr.io/prepull/prepull:v%s" .Chart.AppVersion -}}
{{- end -}}

{{/* The puller pods' image: agent.image, or the controller's own. */}}
{{- define "prepull.agentImage" -}}
{{- .Values.agent.image | default (include "prepull.image" .) -}}
{{- end -}}
