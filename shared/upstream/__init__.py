"""The models' side: public models and their pools (config), the upstream deployments and how
each is reached (upstreams), the HTTP client (client), one upstream call (call), failover across
a pool (relay), calls to one known upstream: stored responses, files and batches (single), an
upstream response turned into the client's answer (answers), what of an answer may reach the
client (scrub), streamed answers, text or binary (streams), deployment health and breakers in
process or in Redis (balancer, health, health_redis), which system and deployment own each
stored response (owners), and which system owns each file and batch (objects).

Imports from shared/: the layers below it (up to usage).
"""
