from moto.macie2.urls import url_paths as moto_paths

from .responses import MacieResponse

url_bases = [r"https?://macie2\.(.+)\.amazonaws\.com"]

# moto's routes answered by our response class, plus the findings routes moto lacks.
url_paths = {path: MacieResponse.dispatch for path in moto_paths} | {
    "{0}/findings$": MacieResponse.dispatch,
    "{0}/findings/describe$": MacieResponse.dispatch,
}
