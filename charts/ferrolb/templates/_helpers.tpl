{{/* Labels of every object: (dict "root" $ "component" "controller"). */}}
{{- define "ferrolb.labels" -}}
app.kubernetes.io/name: ferrolb
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Selector labels of a component's pods (must never change between releases). */}}
{{- define "ferrolb.selector" -}}
app.kubernetes.io/name: ferrolb
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* Image reference: (dict "root" $ "image" .Values.controller.image). */}}
{{- define "ferrolb.image" -}}
{{ .image.repository }}:{{ .image.tag | default .root.Chart.AppVersion }}
{{- end }}
