#!/bin/bash
 
patroni_status=`/usr/bin/curl -sL -w "%{http_code}\\n" "127.0.0.1:8008" -o /dev/null`
 
if [ $patroni_status -eq 200 ]; then
exit 0
elif [ $patroni_status -eq 503 ]; then
exit 1
fi
