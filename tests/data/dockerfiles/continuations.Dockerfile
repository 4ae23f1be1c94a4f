FROM alpine

# comments and blank lines inside a continuation are dropped
RUN apk add --no-cache \
      curl \
# a comment

      git \   
      jq

  # indented comment
run echo "# not a comment" \
 && echo done
EnV a=1 \
    b=2
