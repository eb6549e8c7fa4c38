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

{{/* The controller's and the node agent's image reference: name:tag, pinned as name:tag@digest with image.digest. */}}
{{- define "prepull.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (.Values.image.tag | default (printf "v%s" .Chart.AppVersion)) -}}
{{- if .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" .Values.image.digest) -}}
{{- fail "image.digest must be sha256:<64 lower-case hex digits>, as scripts/build-image.sh prints it" -}}
{{- end -}}
{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* The image the operator uses when --agent-image is not given (src/version.ts releasedImage). */}}
{{- define "prepull.releasedImage" -}}
{{- printf "ghcr.io/prepull/prepull:v%s" .Chart.AppVersion -}}
{{- end -}}

{{/* The puller pods' image: agent.image, or the controller's own. */}}
{{- define "prepull.agentImage" -}}
{{- .Values.agent.image | default (include "prepull.image" .) -}}
{{- end -}}
