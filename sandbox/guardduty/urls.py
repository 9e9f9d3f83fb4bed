from moto.guardduty.urls import url_paths as moto_paths

from .responses import GuardDutyResponse

url_bases = [r"https?://guardduty\.(.+)\.amazonaws\.com"]

# moto's routes answered by our response class, plus the findings and members routes moto lacks.
url_paths = {path: GuardDutyResponse.dispatch for path in moto_paths} | {
    "{0}/detector/(?P<detector_id>[^/]+)/findings$": GuardDutyResponse.dispatch,
    "{0}/detector/(?P<detector_id>[^/]+)/findings/get$": GuardDutyResponse.dispatch,
    "{0}/detector/(?P<detector_id>[^/]+)/member$": GuardDutyResponse.dispatch,
    "{0}/detector/(?P<detector_id>[^/]+)/member/get$": GuardDutyResponse.dispatch,
}
