FROM busybox
ARG NAME=world
RUN <<EOF
set -e
echo "hello $NAME"
EOF
RUN <<-EOT
	echo tabs are stripped
	EOT
RUN cat <<EOF > /greeting && cat <<'RAW' >> /greeting
hi ${NAME}
EOF
literal ${NAME}
RAW
RUN <<EOF
#!/usr/bin/env sh
echo "a script with its own interpreter"
EOF
COPY <<EOF <<"NOEXPAND" /etc/
name=${NAME}
EOF
name=${NAME}
NOEXPAND
COPY --chmod=0755 <<-'SCRIPT' /usr/local/bin/run.sh
	#!/bin/sh
	exec "$@"
	SCRIPT
ONBUILD RUN <<EOF
echo triggered
EOF
CMD ["cat", "/greeting"]
COPY <<EOF /unquoted-marker-expands-special-params-as-docker
exec "$@" \$HOME
EOF
