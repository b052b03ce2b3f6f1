"""Salon's client SDK for live spaces: no Django, so bots, load tests and
``space_client`` use it from anywhere. It imports only Salon's pure audio engine
(``spaces.audio``) and the protocol's command table (``spaces.protocol``)."""
