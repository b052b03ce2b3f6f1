# Models arrive with the voicetweets issue.
