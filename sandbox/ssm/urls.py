from .responses import SsmResponse

url_bases = [r"https?://ssm\.(.+)\.amazonaws\.com"]

url_paths = {"{0}/$": SsmResponse.dispatch}
