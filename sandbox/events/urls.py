from .responses import EventsResponse

url_bases = [r"https?://events\.(.+)\.amazonaws\.com"]

url_paths = {"{0}/": EventsResponse.dispatch}
