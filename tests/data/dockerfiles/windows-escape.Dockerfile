# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command"]
WORKDIR C:\app
COPY bin\ C:\app\bin\
RUN New-Item -ItemType Directory `
    -Path C:\data ; `
    Write-Host done
ENV ROOT=C:\app LOG=`$HOME
CMD ["C:\\app\\bin\\app.exe"]
