"""EventBridge delivery as AWS does it, where moto falls short: cross-account forwarding keeps the original event
(id, account, region, time, resources) and honours the receiving bus's policy; SQS targets receive the whole event
and only when the queue's policy lets the rule send."""
