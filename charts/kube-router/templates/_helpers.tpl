{{/* Labels every object of the release carries. */}}
{{- define "kube-router.labels" -}}
k8s-app: kube-router
tier: node
app.kubernetes.io/name: kube-router
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pod selector: stable across upgrades. */}}
{{- define "kube-router.selector" -}}
k8s-app: kube-router
tier: node
{{- end -}}

{{- define "kube-router.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
