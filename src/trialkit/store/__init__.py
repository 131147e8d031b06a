"""trialkit.store"""
