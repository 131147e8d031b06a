"""trialwright.domain"""
