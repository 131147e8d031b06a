"""trialkit.protocol"""
