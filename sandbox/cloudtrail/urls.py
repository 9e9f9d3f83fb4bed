from .responses import CloudTrailResponse

url_bases = [r"https?://cloudtrail\.(.+)\.amazonaws\.com"]

url_paths = {"{0}/$": CloudTrailResponse.dispatch}
