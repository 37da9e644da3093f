# pki.sh: certificates and kubeconfigs for the cluster, made with openssl.
# Sourced by up.sh after lib.sh. ECDSA P-256 keys keep generation fast.
# shellcheck shell=bash

# new_key FILE makes an EC private key.
new_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; chmod 600 "$1"; }

# sign NAME SUBJECT USAGE [SAN]: makes NAME.key and NAME.crt signed by the CA.
# USAGE is serverAuth, clientAuth or both (comma separated).
sign() {
	local name="$1" subj="$2" usage="$3" san="${4:-}" p="$D/pki"
	new_key "$p/$name.key"
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$usage"
		[[ -n $san ]] && echo "subjectAltName=$san"
	} >"$p/$name.ext"
	openssl req -new -key "$p/$name.key" -subj "$subj" -out "$p/$name.csr" 2>/dev/null
	openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "$p/$name.ext" -out "$p/$name.crt" 2>/dev/null
	rm -f "$p/$name.csr" "$p/$name.ext"
}

make_pki() {
	local p="$D/pki"
	if [[ -f $p/.complete ]]; then
		return 0
	fi
	rm -rf "$p"
	mkdir -p "$p"
	chmod 700 "$p"
	new_key "$p/ca.key"
	openssl req -x509 -new -key "$p/ca.key" -subj "/CN=ephem-cluster-ca" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$p/ca.crt" 2>/dev/null
	sign apiserver "/CN=kube-apiserver" serverAuth \
		"DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP,IP:$NODE_IP"
	sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
	sign admin "/O=system:masters/CN=ephem-admin" clientAuth
	sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
	sign kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:$NODE_IP,IP:127.0.0.1"
	sign controller-manager "/CN=system:kube-controller-manager" clientAuth
	sign scheduler "/CN=system:kube-scheduler" clientAuth
	# Service-account token signing key pair.
	new_key "$p/sa.key"
	openssl ec -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
	touch "$p/.complete"
}

# write_kubeconfig FILE USER: a kubeconfig for USER's client certificate,
# with the certificates embedded so that the file can be copied.
write_kubeconfig() {
	local file="$1" user="$2" p="$D/pki"
	cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: ephem
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$p/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$p/$user.crt")
    client-key-data: $(base64 -w0 "$p/$user.key")
contexts:
- name: ephem
  context:
    cluster: ephem
    user: $user
current-context: ephem
KUBECONFIG
	chmod 600 "$file"
}
